"""The explorer: a self-contained page over an analysed run or a study (``nerve explore``), and the same page
backed by a local server that holds the model and ablates units live (``nerve serve``)."""

from nerve.explore.page import EXPLORER_DIR, explorer_files, explorer_link, write_explorer

__all__ = ["EXPLORER_DIR", "explorer_files", "explorer_link", "write_explorer"]
