import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../clients/typescript/src', import.meta.url));

/** The package's own sources (not the generated code). */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? e.name === 'gen'
        ? []
        : sources(join(dir, e.name))
      : e.name.endsWith('.ts')
        ? [join(dir, e.name)]
        : [],
  );
}

interface OptionDoc {
  readonly option: string;
  readonly documented: boolean;
  readonly hasDefault: boolean;
  readonly optional: boolean;
}

/** Every property of every exported interface named `…Options`, with what its TSDoc says. */
function optionDocs(): OptionDoc[] {
  const found: OptionDoc[] = [];
  for (const file of sources(SRC)) {
    const source = ts.createSourceFile(
      file,
      readFileSync(file, 'utf8'),
      ts.ScriptTarget.ES2022,
      true,
    );
    source.forEachChild((node) => {
      if (!ts.isInterfaceDeclaration(node) || !node.name.text.endsWith('Options')) return;
      if (!node.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) return;
      for (const member of node.members) {
        if (!ts.isPropertySignature(member)) continue;
        const tags = ts.getJSDocTags(member);
        const docs = ts.getJSDocCommentsAndTags(member);
        found.push({
          option: `${node.name.text}.${member.name.getText(source)}`,
          documented: docs.length > 0,
          hasDefault: tags.some((t) => t.tagName.text === 'default'),
          optional: member.questionToken !== undefined,
        });
      }
    });
  }
  return found;
}

describe('the client package options', () => {
  const options = optionDocs();

  it('are found (ConnectOptions among them)', () => {
    expect(options.map((o) => o.option)).toEqual(
      expect.arrayContaining(['ConnectOptions.address', 'ConnectOptions.deadlineMs']),
    );
  });

  it('each have TSDoc, and each optional one a @default', () => {
    expect(options.filter((o) => !o.documented).map((o) => o.option)).toEqual([]);
    expect(options.filter((o) => o.optional && !o.hasDefault).map((o) => o.option)).toEqual([]);
  });
});
