"""Wire formats: CloudEvents, Alertmanager webhooks, dead-letter records, state codecs."""
