// Entra ID authentication in front of the HTTP API (App Service Authentication, authsettingsV2), when
// apiAuthClientId is set. Callers then need a bearer token for that app registration *and* a function
// key: the Functions host keeps checking keys behind App Service Authentication. Event Grid's delivery
// path is excluded: Event Grid authenticates to it with the function's system key, not a token.

@description('Name of the function app (in this resource group).')
param siteName string

@description('Client ID of the app registration callers get tokens for (audience api://<client id>).')
param clientId string

@description('Object IDs of the groups whose members may call; empty: no group restriction.')
param allowedGroups array

@description('Object IDs of the users or service principals that may call; empty: no restriction by identity.')
param allowedPrincipals array

@description('Client IDs of the applications that may call; empty: no restriction by application.')
param allowedApplications array

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: siteName
}

// checkov treats every Microsoft.Web/sites/config as a whole web app and looks for site properties in
// these authentication settings; the site's own checks run on function-app.bicep.
resource auth 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: this resource *is* the App Service Authentication setting (platform.enabled: true).
  // checkov:skip=CKV_AZURE_63: a site property (HTTP logging), not one of the authentication settings.
  // checkov:skip=CKV_AZURE_65: a site property (detailed errors), not one of the authentication settings.
  // checkov:skip=CKV_AZURE_66: a site property (failed request tracing), not one of the authentication settings.
  // checkov:skip=CKV_AZURE_80: a site property (.NET version; the app is Python), not one of the authentication settings.
  // checkov:skip=CKV_AZURE_88: a site property (Azure Files; Flex Consumption has none), not one of the authentication settings.
  // checkov:skip=CKV_AZURE_222: a site property (public network access; function-app.bicep says why it stays on), not one of the authentication settings.
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: [
        '/runtime/webhooks/eventgrid'
        '/runtime/webhooks/EventGrid'
      ]
    }
    httpSettings: {
      requireHttps: true
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: clientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            'api://${clientId}'
            clientId
          ]
          defaultAuthorizationPolicy: {
            allowedPrincipals: {
              groups: allowedGroups
              identities: allowedPrincipals
            }
            allowedApplications: allowedApplications
          }
        }
      }
    }
  }
}
