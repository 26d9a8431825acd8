"""The contract: events, commands, subjects, the codec and the JetStream event store."""
