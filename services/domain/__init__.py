"""Pure deciders: decide(command, state, context) -> events; evolve(state, event) -> state."""
