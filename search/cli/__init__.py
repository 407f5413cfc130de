"""The command line: argument parsing and one function per command."""


def main(argv=None) -> int:  # noqa: ANN001 - the console-script entry point, kept light for --help
    from .main import main as run

    return run(argv)
