// Everything one identity is granted: its own resources (storage, telemetry), the Key Vault and the
// custom ACR role at every ROTATOR_REGISTRIES entry. One module so that main.bicep can grant a
// user-assigned identity before the app exists, or the app's system-assigned identity after.
targetScope = 'subscription'

@description('Object ID of the identity.')
param principalId string

@description('Resource group of the app, its storage account and Application Insights.')
param appResourceGroupName string

@description('Name of the app storage account.')
param storageAccountName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

@description('Subscription of the Key Vault.')
param vaultSubscriptionId string

@description('Resource group of the Key Vault.')
param vaultResourceGroupName string

@description('Name of the Key Vault.')
param vaultName string

@description('Object ID of a user or group allowed to read secret values (the deployer); empty for none.')
param readerPrincipalId string

@description('The ROTATOR_REGISTRIES entries as {subscriptionId, resourceGroup, registry} (main.bicep targets).')
param targets array

@description('Resource ID of the custom ACR role.')
param roleDefinitionId string

@description('Makes the nested deployment names unique per environment and identity.')
param deploymentSuffix string

module appRoles 'app-roles.bicep' = {
  name: 'app-roles-${deploymentSuffix}'
  scope: resourceGroup(appResourceGroupName)
  params: {
    principalId: principalId
    storageAccountName: storageAccountName
    applicationInsightsName: applicationInsightsName
  }
}

module vaultAccess 'vault-access.bicep' = {
  name: 'vault-access-${deploymentSuffix}'
  scope: resourceGroup(vaultSubscriptionId, vaultResourceGroupName)
  params: {
    vaultName: vaultName
    appPrincipalId: principalId
    readerPrincipalId: readerPrincipalId
  }
}

module scopeAccess 'scope-access.bicep' = [
  for (target, index) in targets: {
    name: 'acr-scope-${index}-${deploymentSuffix}'
    scope: subscription(target.subscriptionId)
    params: {
      resourceGroupName: target.resourceGroup
      registryName: target.registry
      principalId: principalId
      roleDefinitionId: roleDefinitionId
    }
  }
]

output vaultLocation string = vaultAccess.outputs.location
