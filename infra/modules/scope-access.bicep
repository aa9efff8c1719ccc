// Assigns the rotator's custom ACR role at one ROTATOR_REGISTRIES entry: a registry, a resource group or
// a whole subscription (the forms rotator/core/resource_ids.py parse_target_scope accepts). Deployed at
// the entry's subscription, which may differ from the deployment's: the custom role is assignable there
// (acr-role.bicep assignableScopes). tests/infra/test_scopes.py checks main.bicep feeds it every form.
targetScope = 'subscription'

@description('Resource group of the entry; empty for a subscription entry.')
param resourceGroupName string

@description('Registry name of the entry; empty for a resource group or subscription entry.')
param registryName string

@description('Object ID of the identity the role is granted to.')
param principalId string

@description('Resource ID of the custom role (acr-role.bicep).')
param roleDefinitionId string

// A skipped module still names a resource group; this one is never deployed to.
var groupName = empty(resourceGroupName) ? 'unused-subscription-entry' : resourceGroupName

resource subscriptionAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (empty(resourceGroupName)) {
  name: guid(subscription().id, principalId, roleDefinitionId)
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'acr-token-rotator: rotate token passwords and certificates of every registry in this subscription'
  }
}

module groupAccess 'group-access.bicep' = if ((!empty(resourceGroupName)) && empty(registryName)) {
  name: 'acr-group-${uniqueString(groupName, principalId)}'
  scope: resourceGroup(groupName)
  params: {
    principalId: principalId
    roleDefinitionId: roleDefinitionId
  }
}

module registryAccess 'registry-access.bicep' = if (!empty(registryName)) {
  name: 'acr-registry-${uniqueString(groupName, registryName, principalId)}'
  scope: resourceGroup(groupName)
  params: {
    registryName: empty(registryName) ? 'unused' : registryName
    principalId: principalId
    roleDefinitionId: roleDefinitionId
  }
}
