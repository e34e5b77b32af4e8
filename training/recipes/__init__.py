"""Recipes that reproduce the bundled models (data splits and commands); see framecolor/data/MODEL_CARD.md."""
