"""Configuration: models and the one loader."""

from paude.config.load import LoadedConfig, load_config
from paude.config.models import PaudeConfig

__all__ = ["LoadedConfig", "PaudeConfig", "load_config"]
