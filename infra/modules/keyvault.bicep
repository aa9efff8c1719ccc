// The Key Vault the rotator publishes token credentials to, when no existing vault is given.
// RBAC authorization only (no access policies), soft delete and purge protection on: a deleted
// credential can be recovered for 90 days and nobody can purge it early.

@description('Region of the vault.')
param location string

@description('Tags applied to the vault.')
param tags object

@description('Vault name (3-24 letters, digits and hyphens, globally unique).')
@minLength(3)
@maxLength(24)
param name string

@description('Enabled: consumers anywhere may reach the vault (still needing an Entra token and a data role). Disabled: only through private endpoints and trusted Azure services.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

@description('Days a deleted secret or vault stays recoverable.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' = {
  // checkov:skip=CKV_AZURE_109: public access is the publicNetworkAccess parameter (docs/deploy.md, Network), on by default: consumers (pipelines, clusters, partners) reach the vault from addresses that are not known in advance. Access is RBAC-only.
  // checkov:skip=CKV_AZURE_189: same reason; public network access stays on, every request needs an Entra token and a Key Vault data role.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: (publicNetworkAccess == 'Enabled') ? 'Allow' : 'Deny'
      bypass: 'AzureServices'
    }
  }
}

output id string = vault.id
output name string = vault.name
