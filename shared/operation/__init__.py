"""An operation (a sync) as Argo CD shows it, and the one state machine that runs it."""
