"""Network profiles: named allow/deny lists (built in, plus the operator's)."""

from __future__ import annotations

from typing import Any

from .policy import normalize_list

_GITHUB = ["github.com", "*.github.com", "*.githubusercontent.com", "codeload.github.com"]
_PYPI = ["pypi.org", "files.pythonhosted.org"]
_NPM = ["registry.npmjs.org", "registry.yarnpkg.com"]

BUILTIN: dict[str, dict[str, Any]] = {
    "unrestricted": {
        "description": "Open egress to the internet (the host, other sandboxes and "
        "169.254.0.0/16 stay blocked).",
        "allow": [],
        "deny": [],
    },
    "locked-down": {
        "description": "No egress at all: every connection is refused and no name resolves.",
        "allow": [],
        "deny": ["0.0.0.0/0", "::/0"],
    },
    "claude-code": {
        "description": "Anthropic API, PyPI, npm and GitHub; nothing else.",
        "allow": ["api.anthropic.com", "statsig.anthropic.com", *_PYPI, *_NPM, *_GITHUB],
        "deny": [],
    },
    "openai": {
        "description": "OpenAI API, PyPI, npm and GitHub; nothing else.",
        "allow": ["api.openai.com", *_PYPI, *_NPM, *_GITHUB],
        "deny": [],
    },
    "data-science": {
        "description": "PyPI, conda, Hugging Face and GitHub; nothing else.",
        "allow": [
            *_PYPI,
            "conda.anaconda.org",
            "repo.anaconda.com",
            "*.anaconda.org",
            "huggingface.co",
            "*.huggingface.co",
            "*.hf.co",
            *_GITHUB,
        ],
        "deny": [],
    },
    "web-dev": {
        "description": "npm, common CDNs and GitHub; nothing else.",
        "allow": [
            *_NPM,
            "cdn.jsdelivr.net",
            "unpkg.com",
            "cdnjs.cloudflare.com",
            "esm.sh",
            "fonts.googleapis.com",
            "fonts.gstatic.com",
            *_GITHUB,
        ],
        "deny": [],
    },
}


def load_profiles(operator: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Built-in profiles plus the operator's (which may replace a built-in one)."""
    out = {k: dict(v) for k, v in BUILTIN.items()}
    for name, spec in (operator or {}).items():
        if not isinstance(spec, dict):
            raise ValueError(f"runner config: profiles.{name} must be a table")
        out[str(name)] = {
            "description": str(spec.get("description", f"operator profile {name}")),
            "allow": normalize_list(spec.get("allow"), f"profiles.{name}.allow"),
            "deny": normalize_list(spec.get("deny"), f"profiles.{name}.deny"),
        }
    return out
