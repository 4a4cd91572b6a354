"""The engine wing (see docs/ARCHITECTURE.md). Its modules load TensorFlow, so importing it is
the package's first use: TensorFlow's CPU allocator is chosen first (`engine.allocator`)."""

from explainers.engine.allocator import prefer_system_allocator

prefer_system_allocator()
