"""The model: an LSTM encoder whose final (h, c) start an LSTM decoder (``seq2seq``), with
optional attention (``attention``) and a learned bridge between unequal widths (``bridge``);
``params`` counts its parameters in closed form. Tensors in, logits out; no I/O.
"""
