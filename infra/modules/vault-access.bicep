// Roles on the Key Vault the credentials are published to: a vault this deployment created or an
// existing one (deployed at the vault's resource group, which may differ from the app's).

@description('Name of the vault (in this resource group).')
param vaultName string

@description('Object ID of the identity the app runs as (system- or user-assigned).')
param appPrincipalId string

@description('Object ID of a user or group allowed to read secret values (the deployer); empty for none.')
param readerPrincipalId string = ''

// Built-in role definition IDs (identical in every tenant).
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
var keyVaultCertificateUser = 'db79e9a7-68ee-4b58-9aeb-b90e7c24fcba'
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' existing = {
  name: vaultName
}

// Secrets Officer: list secret properties, read the current version, write new versions with tags
// and expiry. Certificate User: read the certificates pushed to tokens (CertificateNewVersionCreated).
resource appRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in [keyVaultSecretsOfficer, keyVaultCertificateUser]: {
    name: guid(vault.id, appPrincipalId, roleId)
    scope: vault
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
      description: 'acr-token-rotator: publish ACR token credentials'
    }
  }
]

resource readerRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(readerPrincipalId)) {
  name: guid(vault.id, readerPrincipalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: readerPrincipalId
    description: 'acr-token-rotator: the deployer may read the published credentials'
  }
}

output location string = vault.location
