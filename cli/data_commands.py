"""``run_search.py data ...``: make, convert and check data folders (no Keras is imported)."""

from __future__ import annotations

import argparse

from .paths import output_file, output_folder, writing


def synth(args: argparse.Namespace) -> int:
    from search.data.synth import write_synthetic_dataset

    output_folder(args.out, "--out")
    with writing(args.out, "the synthetic data"):
        summary = write_synthetic_dataset(
            args.out,
            n_train=args.n_train,
            n_valid=args.n_valid,
            n_test=args.n_test,
            seed=args.seed,
            image_size=args.size,
        )
    print(f"wrote synthetic traffic signs to {args.out}: {summary}")
    return 0


def convert_gtsrb(args: argparse.Namespace) -> int:
    from search.data.gtsrb import convert_gtsrb as convert

    def show(done: int, total: int) -> None:
        if total and (done == total or done % 500 == 0):
            print(f"\rreading images {done}/{total}", end="\n" if done == total else "", flush=True)

    output_folder(args.out, "--out")
    summary = convert(
        args.src,
        args.out,
        size=args.size,
        valid_fraction=args.valid_fraction,
        seed=args.seed,
        crop=args.crop,
        progress=show,
    )
    counts = ", ".join(f"{k} {v}" for k, v in summary["counts"].items())
    print(
        f"wrote {args.out}: {counts} images; {summary['tracks']['valid']} of "
        f"{summary['tracks']['train'] + summary['tracks']['valid']} tracks held out for valid "
        f"({summary['seconds']:.1f}s)"
    )
    return 0


def check(args: argparse.Namespace) -> int:
    from search.data import load_dataset
    from search.data.overview import data_overview
    from search.data.sanity import sanity_report

    if args.html:
        output_file(args.html, "--html")
    dataset = load_dataset(args.dir, n_classes=args.n_classes)
    test = dataset.load_test()
    print(sanity_report(dataset, test).text())
    if args.html:
        from results.dashboard import write_data_report

        with writing(args.html, "the data report"):
            path = write_data_report(data_overview(dataset, test), args.html, title=f"Data: {args.dir}")
        print(f"wrote {path}")
    return 0
