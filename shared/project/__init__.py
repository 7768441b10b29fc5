"""Argo CD's AppProject: the boundary an Application must stay inside (sources, destinations, kinds,
sync windows).

The rules (`model`, `globs`, `permissions`, `windows`, `verdict`) are pure and tested from YAML cases;
`declarative` reads AppProjects and Argo CD's cluster/repository Secrets from the control cluster, and
`gate` is the one place the pipeline asks "may this app reconcile / sync / apply this?".
"""
