"""gencprunex: structured (channel/neuron) pruning of Keras models for microcontrollers."""

from .errors import (
    CheckpointError,
    DataError,
    GencPruneXError,
    InfeasibleBudgetError,
    ModelError,
    ParameterError,
    RatioError,
    UnsupportedLayerError,
)
from .finetune import FineTuner
from .genetic import GeneticPruner
from .graph import ChannelGroup, LayerGraph
from .hardware.profile import Footprint, HardwareProfile
from .pruners import DynamicPruner, FixedPruner
from .rules import register_rule

__version__ = "0.1.0"

__all__ = [
    "ChannelGroup",
    "CheckpointError",
    "DataError",
    "DynamicPruner",
    "FineTuner",
    "FixedPruner",
    "Footprint",
    "GencPruneXError",
    "GeneticPruner",
    "HardwareProfile",
    "InfeasibleBudgetError",
    "LayerGraph",
    "ModelError",
    "ParameterError",
    "RatioError",
    "UnsupportedLayerError",
    "register_rule",
]
