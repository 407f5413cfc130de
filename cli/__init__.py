"""The command line: argument parsing and one function per command."""


def main(argv=None) -> int:  # the console-script entry point, kept light for --help
    from .main import main as run

    return run(argv)
