"""The logic of the annotation app, in verb-named functions that views, tasks, commands and
tests call. Modules by responsibility: access, storage, imports, embeddings, predict, masks,
work (holds and stages) and sessions."""
