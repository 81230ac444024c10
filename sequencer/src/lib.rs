//! veil-sequencer
