"""Git host webhooks: parse and verify a push from any supported provider, and pick the apps it refreshes.

Free of any HTTP framework, so the ASGI receiver (`scheduler/webhook.py`) and the CLI's `admin webhook`
share one implementation.
"""

from shared.webhooks.detect import PROVIDERS, Provider, detect_provider, parse_webhook
from shared.webhooks.event import PushEvent, WebhookError
from shared.webhooks.matching import MANIFEST_GENERATE_PATHS_ANNOTATION, MatchResult, match_apps

__all__ = [
    "MANIFEST_GENERATE_PATHS_ANNOTATION",
    "PROVIDERS",
    "MatchResult",
    "Provider",
    "PushEvent",
    "WebhookError",
    "detect_provider",
    "match_apps",
    "parse_webhook",
]
