"""The vocabulary every part of WaveCD speaks.

Typed errors, the Application model, resource identity, settings and safe YAML.
"""
