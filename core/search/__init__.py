"""Search: loaded scenes, exact scoring, ranking, refine with marks, results and heat maps."""
