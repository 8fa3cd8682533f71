"""configs/accelerate: the YAML files are what `accelerate launch` expects, and the README's commands parse."""

import re
import shlex
from pathlib import Path

import pytest
import yaml

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "accelerate"


@pytest.mark.parametrize(
    "name,distributed_type,zero_stage",
    [
        ("single_gpu.yaml", "NO", None),  # one GPU, no distribution
        ("multi_gpu_zero2.yaml", "DEEPSPEED", 2),  # DeepSpeed ZeRO-2
    ],
)
def test_config_has_the_keys_accelerate_expects(name, distributed_type, zero_stage):
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.commands.launch import launch_command_parser

    raw = yaml.safe_load((CONFIGS / name).read_text())
    assert {"compute_environment", "distributed_type", "num_processes", "mixed_precision"} <= set(raw)
    assert raw["compute_environment"] == "LOCAL_MACHINE" and raw["mixed_precision"] == "bf16"
    assert raw["distributed_type"] == distributed_type and raw["num_processes"] >= 1
    assert (raw.get("deepspeed_config") or {}).get("zero_stage") == zero_stage
    ClusterConfig.from_yaml_file(CONFIGS / name)  # accelerate's own loader: raises on unknown keys
    # accelerate copies deepspeed_config keys onto its launch arguments: each must be one of them
    known = {a.dest for a in launch_command_parser()._actions}
    assert set(raw.get("deepspeed_config") or {}) <= known


def readme_commands() -> list[list[str]]:
    """Every `accelerate launch ...` command in the README, continuation lines joined, split like a shell."""
    text = (CONFIGS / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    commands = [c for b in blocks for c in b.replace("\\\n", " ").splitlines() if c.startswith("accelerate launch")]
    return [shlex.split(c)[2:] for c in commands]


@pytest.mark.parametrize("argv", readme_commands(), ids=lambda a: a[a.index("-m") + 2])
def test_readme_commands_parse(argv):
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    from simpleseg_lite.cli import build_parser

    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(argv))
    assert args.module and args.training_script == "simpleseg_lite.cli"
    cli = build_parser().parse_args(args.training_script_args)  # our flags exist (argparse exits otherwise)
    assert cli.lora and cli.data == "refcoco"


def test_readme_documents_both_entry_points():
    assert {a[a.index("-m") + 2] for a in readme_commands()} == {"train", "gspo"}
