"""Model versions: which SAM weights exist, which one answers, the loaded predictors, and who may
see a version's details. Depends on engine/ and Django only; annotation/ and modeltrain/ build
on it (an import test keeps it that way)."""
