"""Carbon inclusion (碳普惠): data partners report residents' behaviours in signed batches;
each accepted behaviour is quantified with the methodology in force (``mrv.inclusive``),
credited as grams and points in the ledger and shown as a carbon receipt; residents' grams are
pooled monthly into the residents' project."""
