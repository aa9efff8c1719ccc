// The user-assigned identity the function app runs as when identityType is 'UserAssigned'. A resource
// of its own: it is granted its roles before the app exists, and keeps them when the app is re-created.

@description('Region of the identity.')
param location string

@description('Tags of the identity.')
param tags object

@description('Name of the identity.')
param name string

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
