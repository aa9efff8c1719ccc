// The custom role the rotator holds on each target registry: exactly the ARM actions its ACR
// adapter performs (rotator/azure/acr.py REQUIRED_ARM_ACTIONS; tests/infra checks both agree),
// including reading its own effective permissions, which `python -m rotator doctor` checks.
// Built-in roles that cover token management also allow deleting the registry; this one cannot
// delete anything, create tokens or scope maps, read registry admin credentials, or touch images.
targetScope = 'subscription'

@description('Display name of the role (unique in the tenant).')
param roleName string

@description('Subscriptions (/subscriptions/<id>) the role may be assigned in: this one and those of the registries.')
param assignableScopes array

resource role 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'acr-token-rotator', roleName)
  properties: {
    roleName: roleName
    description: 'acr-token-rotator: read registries and tokens, regenerate one token password, set token certificates.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Authorization/permissions/read'
          'Microsoft.ContainerRegistry/registries/generateCredentials/action'
          'Microsoft.ContainerRegistry/registries/operationStatuses/read'
          'Microsoft.ContainerRegistry/registries/read'
          'Microsoft.ContainerRegistry/registries/tokens/operationStatuses/read'
          'Microsoft.ContainerRegistry/registries/tokens/read'
          'Microsoft.ContainerRegistry/registries/tokens/write'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

output id string = role.id
