"""Tests of deltatune.report."""
