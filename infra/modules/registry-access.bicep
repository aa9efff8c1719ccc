// Assigns the rotator's custom role on one registry. Deployed at the registry's resource group,
// which may be any resource group of the subscription.

@description('Name of the registry (in this resource group).')
param registryName string

@description('Object ID of the function app system-assigned identity.')
param principalId string

@description('Resource ID of the custom role (acr-role.bicep).')
param roleDefinitionId string

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, principalId, roleDefinitionId)
  scope: registry
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'acr-token-rotator: rotate token passwords and certificates of this registry'
  }
}
