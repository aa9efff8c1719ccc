// Assigns the rotator's custom ACR role on a resource group: every registry in it, present and future.

@description('Object ID of the identity the role is granted to.')
param principalId string

@description('Resource ID of the custom role (acr-role.bicep).')
param roleDefinitionId string

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, roleDefinitionId)
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'acr-token-rotator: rotate token passwords and certificates of every registry in this resource group'
  }
}
