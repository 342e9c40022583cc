/**
 * The admin token test servers are started with (QUOTA_ADMIN_TOKEN) and their helpers' clients
 * send, so that tests of other things call as an administrator.
 */
export const TEST_ADMIN_TOKEN = 'qa_test-admin-token-0123456789abcdefghijklmnopqrstuvwxyz';
