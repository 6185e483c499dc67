export * from '../../simulator/handler-process.ts';
