"""Every command's ``--help`` documents every option, and shows each option's default."""

from __future__ import annotations

import argparse

from gentorch.cli.main import build_parser


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parsers of ``parser``'s sub-commands, by name."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found |= action.choices
    return found


def _commands() -> dict[str, argparse.ArgumentParser]:
    """``"train vae"`` -> its parser, for every action and model family."""
    return {
        f"{name} {family}": parser
        for name, action_parser in _subcommands(build_parser()).items()
        for family, parser in _subcommands(action_parser).items()
    }


def test_every_option_has_help_and_its_default_shows() -> None:
    commands = _commands()
    assert {"train vae", "eval vae", "train gan", "eval gan", "train classifier"} <= set(commands)
    assert len(commands) == 12  # 8 VAE, 3 GAN, 1 classifier
    problems = []
    for command, parser in commands.items():
        formatter = parser._get_formatter()
        for option in parser._actions:
            if isinstance(option, argparse._HelpAction):
                continue
            flag = option.option_strings[0]
            # argparse prints nothing (not even the default) for an option without help
            if not option.help:
                problems.append(f"{command} {flag}: no help")
                continue
            # the help as --help prints it: the formatter appends "(default: ...)" when a
            # default is set; an option that defaults to unset says what unset means itself
            shown = formatter._get_help_string(option) or ""
            if option.default not in (None, False) and "(default" not in shown:
                problems.append(f"{command} {flag}: default {option.default!r} not shown")
    assert not problems, problems
