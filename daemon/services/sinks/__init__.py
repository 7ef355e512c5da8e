"""Door-event sinks: webhooks and MQTT (delivered from the outbox) and the GPIO door relay (at once)."""
