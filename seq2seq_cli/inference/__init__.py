"""Using a trained model (or an ensemble of them): search (greedy and beam), the
Translator (the one inference path), input streams of ``translate``, scoring (one function
for every metric report), and the parameter report of a checkpoint.
"""
