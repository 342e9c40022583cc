// QuotaExecutor and what it needs: filled in by the executor work.
export {};
