"""Texts of other people's code that our commands show: click's (the backend's `flask`
commands) and argparse's (the programs of tools/). Both translate through the standard
library's gettext, which `loyalty.i18n.for_commands()` points at our catalogue; listing
them here puts them in it (`make translations` extracts what N_() marks). Each is exactly
the library's text, placeholders and all.
"""
from loyalty.i18n import N_, N_plural

CLICK = [
    N_("Usage:"), N_("Options"), N_("Commands"), N_("Positional arguments"),
    N_("Show this message and exit."), N_("Show the version and exit."),
    N_("Error: {message}"), N_("Try '{command} {option}' for help."), N_("Aborted!"),
    N_("Missing argument"), N_("Missing option"), N_("Missing parameter"), N_("Missing command."),
    N_("Missing parameter: {param_name}"), N_("Missing {param_type}"),
    N_("Invalid value for {param_hint}: {message}"), N_("Invalid value: {message}"),
    N_("No such command {name!r}."), N_("No such option {name!r}."), N_("No such option: {name}"),
    N_("default: {default}"), N_("required"), N_("env var: {var}"), N_("(dynamic)"),
    N_("Confirm the action without prompting."), N_("Do you want to continue?"),
    N_("Could not open file {filename!r}: {message}"), N_("unknown error"),
    N_("{value!r} is not a valid {number_type}."), N_("integer"), N_("float"),
    N_("{value} is not in the range {range}."),
    N_plural("{value!r} is not {choice}.", "{value!r} is not one of {choices}."),
    N_plural("Got unexpected extra argument ({args})", "Got unexpected extra arguments ({args})"),
    N_plural("Did you mean {possibility}?", "(Did you mean one of: {possibilities}?)"),
    N_("{name} {filename!r} does not exist."), N_("file"), N_("directory"), N_("path"),
    N_("Option {name!r} does not take a value."),
    N_plural("Option {name!r} requires an argument.", "Option {name!r} requires {nargs} arguments."),
]

# argparse's (Python 3.11), those a person can meet: not the parser author's own mistakes
ARGPARSE = [
    N_('usage: '),
    N_('argument %(argument_name)s: %(message)s'),
    N_('unknown parser %(parser_name)r (choices: %(choices)s)'),
    N_("can't open '%(filename)s': %(error)s"),
    N_('positional arguments'),
    N_('options'),
    N_('show this help message and exit'),
    N_('subcommands'),
    N_('unrecognized arguments: %s'),
    N_('not allowed with argument %s'),
    N_('ignored explicit argument %r'),
    N_('the following arguments are required: %s'),
    N_('one of the arguments %s is required'),
    N_('expected one argument'),
    N_('expected at most one argument'),
    N_('expected at least one argument'),
    N_plural('expected %s argument', 'expected %s arguments'),
    N_('ambiguous option: %(option)s could match %(matches)s'),
    N_('unexpected option string: %s'),
    N_('invalid %(type)s value: %(value)r'),
    N_('invalid choice: %(value)r (choose from %(choices)s)'),
    N_('%(prog)s: error: %(message)s\n'),
]
