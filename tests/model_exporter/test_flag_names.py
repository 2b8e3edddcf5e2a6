"""Retention is --keep-versions, named as its variable KEEP_VERSIONS; --keep still works for one
release, with a warning naming the new flag."""

from __future__ import annotations

from mnist_exporter.cli import build_parser


def test_keep_versions_sets_retention(capsys):
    assert build_parser().parse_args(["--keep-versions", "5"]).keep == 5
    assert capsys.readouterr().err == ""


def test_keep_still_works_with_a_deprecation_warning(capsys):
    assert build_parser().parse_args(["--keep", "4"]).keep == 4
    err = capsys.readouterr().err
    assert "--keep is deprecated" in err and "--keep-versions" in err


def test_the_variable_and_the_flag_share_a_name(monkeypatch):
    monkeypatch.setenv("KEEP_VERSIONS", "6")
    parser = build_parser()
    assert parser.parse_args([]).keep == 6
    assert "--keep-versions" in parser.format_help() and "KEEP_VERSIONS" in parser.format_help()
