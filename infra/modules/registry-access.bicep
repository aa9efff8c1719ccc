// Assigns the rotator's custom role on one registry. Deployed at the registry's resource group, in
// any subscription the custom role is assignable in.

@description('Name of the registry (in this resource group).')
param registryName string

@description('Object ID of the identity the role is granted to.')
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
