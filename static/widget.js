// <caputchin-widget>: replaced by the full widget.
