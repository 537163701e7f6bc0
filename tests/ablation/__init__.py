"""Tests of deltatune.ablation."""
