"""sesim: structure-preserving unpaired image translation with the spatially-correlative loss.

The loss library (`sesim.losses`, `sesim.features`) drops into any training loop; the rest of
the package trains, evaluates and exports the paper's one-sided translation models.
"""

__version__ = "0.1.0"
