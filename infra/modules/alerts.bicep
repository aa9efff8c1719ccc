// Alerts on what the rotator writes (docs/observability.md, Alerts): an action group (email, optional
// webhook) and log search alert rules whose queries live in infra/alerts/*.kql, where tests/infra runs them
// against the log lines and metrics the code really emits. Rules on traces and customMetrics are scoped to
// the Application Insights component; the dead-letter rule reads the storage account's logs in the workspace.

@description('Region of the alert rules.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Suffix of the resource names (the deployment\'s resource token).')
param nameSuffix string

@description('Resource ID of the Application Insights component the app writes to.')
param applicationInsightsId string

@description('Resource ID of the Log Analytics workspace (storage and Key Vault logs).')
param logAnalyticsId string

@description('Email address that receives the alerts; empty: no email (the alerts still show in the portal).')
param alertEmail string = ''

@secure()
@description('HTTPS endpoint that receives the alerts (common alert schema); empty: none. Secure: such URLs often carry a key.')
param alertWebhookUrl string = ''

@description('Alert when an active password or certificate expires within this many days.')
@minValue(1)
@maxValue(3650)
param expiryAlertDays int = 14

@description('Alert when no scan completed for this many hours: two schedule periods.')
@minValue(1)
@maxValue(48)
param scanSilenceAlertHours int = 12

@description('Blob container receiving undeliverable Event Grid events.')
param deadLetterContainerName string

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-${nameSuffix}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'acr-rotator'
    enabled: true
    emailReceivers: empty(alertEmail) ? [] : [
      {
        name: 'email'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
    webhookReceivers: empty(alertWebhookUrl) ? [] : [
      {
        name: 'webhook'
        serviceUri: alertWebhookUrl
        useCommonAlertSchema: true
      }
    ]
  }
}

// One entry per rule. autoMitigate false: a fired alert stays until a person closes it, so a rotator that
// goes silent afterwards cannot resolve it. Windows are at most two days (the longest a log alert reads).
var rules = [
  {
    name: 'rotation-failures'
    displayName: 'ACR token rotator: a token failed, was refused or drifted'
    description: 'A per-token outcome needs a person: failed (superseded included), refused or drift. docs/troubleshooting.md names each reason and code.'
    severity: 1
    scope: applicationInsightsId
    frequency: 'PT15M'
    window: 'PT15M'
    autoMitigate: false
    query: loadTextContent('../alerts/rotation-failures.kql')
  }
  {
    name: 'credential-expiry'
    displayName: 'ACR token rotator: a credential expires within ${expiryAlertDays} days'
    description: 'An active password or certificate expires soon. Computed from the last expiry each credential reported, so it fires even when the rotator stopped working.'
    severity: 0
    scope: applicationInsightsId
    frequency: 'PT1H'
    window: 'P2D'
    autoMitigate: false
    query: 'let threshold = ${expiryAlertDays}d;\n${loadTextContent('../alerts/credential-expiry.kql')}'
  }
  {
    name: 'poison-messages'
    displayName: 'ACR token rotator: poison messages'
    description: 'A token\'s run failed on every delivery and its message went to a poison queue (docs/runbooks.md).'
    severity: 1
    scope: applicationInsightsId
    frequency: 'PT15M'
    window: 'PT1H'
    autoMitigate: true
    query: loadTextContent('../alerts/poison.kql')
  }
  {
    name: 'scan-silence'
    displayName: 'ACR token rotator: no scan completed for ${scanSilenceAlertHours} hours'
    description: 'The timer did not run, or every run died before completing (settings, permissions, a crash): nothing is being rotated.'
    severity: 1
    scope: applicationInsightsId
    frequency: 'PT1H'
    window: 'PT${scanSilenceAlertHours}H'
    autoMitigate: true
    query: loadTextContent('../alerts/scan-silence.kql')
  }
  {
    name: 'eventgrid-deadletter'
    displayName: 'ACR token rotator: Key Vault events dead-lettered'
    description: 'Event Grid could not deliver Key Vault events to the app for 24 hours and wrote them to the ${deadLetterContainerName} container.'
    severity: 2
    scope: logAnalyticsId
    frequency: 'PT1H'
    window: 'PT1H'
    autoMitigate: false
    query: 'let container = \'${deadLetterContainerName}\';\n${loadTextContent('../alerts/deadletter.kql')}'
  }
]

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [
  for rule in rules: {
    name: 'alert-${rule.name}-${nameSuffix}'
    location: location
    tags: tags
    kind: 'LogAlert'
    properties: {
      displayName: rule.displayName
      description: rule.description
      severity: rule.severity
      enabled: true
      scopes: [
        rule.scope
      ]
      evaluationFrequency: rule.frequency
      windowSize: rule.window
      autoMitigate: rule.autoMitigate
      criteria: {
        allOf: [
          {
            query: rule.query
            timeAggregation: 'Count'
            operator: 'GreaterThan'
            threshold: 0
            failingPeriods: {
              numberOfEvaluationPeriods: 1
              minFailingPeriodsToAlert: 1
            }
          }
        ]
      }
      actions: {
        actionGroups: [
          actionGroup.id
        ]
      }
    }
  }
]

output actionGroupId string = actionGroup.id
output alertRuleNames array = [for (rule, i) in rules: alertRules[i].name]
