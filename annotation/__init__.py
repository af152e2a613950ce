"""The work: datasets, images, masks, annotator sessions and stages, with their REST API."""
