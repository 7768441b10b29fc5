"""Planning a sync as Argo CD orders it: options, hooks, waves, kind order, and tracking of applied objects."""
