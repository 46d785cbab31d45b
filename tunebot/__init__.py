"""tunebot: FAQs and support logs -> a domain-adapted chat model, with proof that it helped."""

__version__ = "0.1.0"
