"""The pipeline's steps (fetch, diff, wave_apply, health_check, the tick), which compose the verbs with I/O."""
