/** Full names of the services this server implements, as the health service knows them. */
export const QUOTA_SERVICE = 'quota.v1.QuotaService';
export const ADMIN_SERVICE = 'quota.v1.AdminService';
