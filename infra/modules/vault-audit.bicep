// Key Vault's AuditEvent log into the deployment's Log Analytics workspace: who read, wrote or listed which
// secret, and when (docs/runbooks.md: who read a leaked credential). Deployed in the vault's resource group,
// for a vault this deployment creates, or for an existing one when auditExistingKeyVault is on (that needs
// the right to write diagnostic settings on it, e.g. Monitoring Contributor).

@description('Name of the Key Vault, in this module\'s resource group.')
param vaultName string

@description('Resource ID of the Log Analytics workspace receiving the audit log.')
param logAnalyticsId string

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' existing = {
  name: vaultName
}

resource audit 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'acr-token-rotator-audit'
  scope: vault
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        category: 'AuditEvent'
        enabled: true
      }
    ]
  }
}
