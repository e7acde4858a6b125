"""Unified alerting for security and performance: rules, lifecycle, noise control, notifiers.

``AlertEngine`` (engine.py) evaluates ``Rule`` objects (rules.py; built and
validated by rule_loading.py, the shipped set in default_rules.py) over the
store, runs each alert's lifecycle, groups, inhibits and silences notifications
(grouping.py, silences.py, muting.py), attaches security and performance context
(context.py), answers the API (describe.py) and hands notifications to
notifiers (notifiers/).
"""

from __future__ import annotations

from secperf.alerts.default_rules import default_rules
from secperf.alerts.describe import AlertNotFoundError
from secperf.alerts.engine import AlertEngine, EngineStats
from secperf.alerts.grouping import (
    DEFAULT_INHIBIT_RULES,
    GroupSettings,
    InhibitRule,
    Notification,
)
from secperf.alerts.rule_loading import (
    LoadedRules,
    RuleError,
    load_rule_dicts,
    load_rules_file,
    rule_from_config,
    rule_from_dict,
    rules_from_config,
)
from secperf.alerts.rules import Rule
from secperf.alerts.silences import MatcherError
from secperf.security.series import security_samples

__all__ = [
    "DEFAULT_INHIBIT_RULES",
    "AlertEngine",
    "AlertNotFoundError",
    "EngineStats",
    "GroupSettings",
    "InhibitRule",
    "LoadedRules",
    "MatcherError",
    "Notification",
    "Rule",
    "RuleError",
    "default_rules",
    "load_rule_dicts",
    "load_rules_file",
    "rule_from_config",
    "rule_from_dict",
    "rules_from_config",
    "security_samples",
]
