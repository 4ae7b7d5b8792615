from .sepc import SEPC, PConv, SEPCConv, integrated_bn

__all__ = ['SEPC', 'PConv', 'SEPCConv', 'integrated_bn']
