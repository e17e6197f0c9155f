"""Using a trained model: search (greedy and beam), the Translator (the one inference path),
input streams of ``translate``, scoring (one function for every metric report), checkpoint
averaging, ONNX export and its standalone runner, and the parameter report of a checkpoint.
"""
